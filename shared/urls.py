"""URLs as they may be shown: printed, logged or put in an error message.

A Redis URL often carries the server's password (`redis://:pw@host:6379/0`). Masking it wherever
a URL is displayed keeps it out of terminals, CI logs and bug reports, while the rest of the URL
still says which server was meant.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"
# redis-py also takes the password as a query parameter: `redis://host/0?password=pw`.
_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """`url` with its password, if any, replaced by `***`; everything else is kept as written.

    Input that does not parse as a URL comes back unchanged: this runs while reporting another
    error and must not raise one of its own.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    masked = url
    if parts.password:
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        # The netloc is the first thing after `scheme://`, so its first occurrence is the one.
        masked = masked.replace(parts.netloc, f"{user}:{MASK}@{host}", 1)
    # Neither the netloc nor the path holds a '?', so the first one starts the query.
    head, question, tail = masked.partition("?")
    return head + question + _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", tail)
