"""The command line: the console script, its parsers, the inspect command's work, messages and
exit codes, bounded workers, lanes and directory discovery.

Empty on purpose: `rnninspect MODEL` imports `inspector.cli.entry` first, and nothing here may
add to its start-up.
"""
