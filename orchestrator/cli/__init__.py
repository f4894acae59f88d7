"""The `taskforce` command (`app`), its subcommands for the shared files (`files`) and the
pool's metrics (`metrics`), and the view of a batch while it runs (`batch_view`). Nothing else
in `orchestrator` imports from here: a library user never pays for the command line."""
