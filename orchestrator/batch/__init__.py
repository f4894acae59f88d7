"""Many main-agent runs: a batch file (`input`) run here (`run`) or submitted to main-run workers
(`submissions`, `main_runs`, their leases in `leases`), with the results file that is also its
memory across reruns (`results`)."""
