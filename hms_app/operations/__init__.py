"""Operations tools run from the command line, tests and benchmarks, never by the app's pages: the demo and scale seeds, backup and restore, data keys."""
