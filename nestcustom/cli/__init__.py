"""The command line: thin modules that parse options, call one stage, print, map errors."""
