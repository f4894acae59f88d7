"""URLs as the CLI and error messages show them: the password masked, nothing else changed."""

from __future__ import annotations

import pytest

from shared.files import FilesConfigError, open_store
from shared.urls import mask_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:pw@h/0", "redis://user:***@h/0"),
        (
            "rediss://default:p@ss:w0rd@cache.example:6380/1#ns",
            "rediss://default:***@cache.example:6380/1#ns",
        ),
        ("s3://KEY:SECRET@bucket/prefix", "s3://KEY:***@bucket/prefix"),
        ("redis://host:6379/0?password=pw&db=1", "redis://host:6379/0?password=***&db=1"),
        ("unix:///run/redis.sock?db=0&Password=pw#ns", "unix:///run/redis.sock?db=0&Password=***#ns"),
    ],
)
def test_the_password_is_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "redis://host:6379/0",
        "redis://user@host/0",
        "redis://user:@host/0",
        "s3://bucket/prefix",
        "file:///srv/taskforce",
        "memory://t",
        "redis://host/0?db=1&passwords=no",
    ],
)
def test_urls_without_a_password_are_unchanged(url: str) -> None:
    assert mask_url(url) == url


@pytest.mark.parametrize("text", ["", "not a url", "redis://[::1:6379/0", "redis://:pw@[::1/0"])
def test_unparsable_input_comes_back_as_it_was(text: str) -> None:
    assert mask_url(text) == text


@pytest.mark.parametrize(
    "url",
    ["s3://KEY:hunter2@bucket/prefix", "s3://bucket/prefix?password=hunter2", "file://u:hunter2@nas/srv"],
)
def test_a_rejected_files_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(FilesConfigError) as error:
        open_store(url)

    assert "hunter2" not in str(error.value)
    assert "***" in str(error.value)
