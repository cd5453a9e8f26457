"""How long the CLI's commands take: the one source of the figures that both the commands'
--help and the README's table of commands quote (tests/test_figures.py checks that each
README row says its figure). Measured alone on a 2-core machine (CPU only), as medians;
rerun the command named and change the figure here, then the README row."""

# command (as the README's row starts) -> how long it takes
FIGURES = {
    "transformer-spec copy-task": "16 s alone",
    "transformer-spec check reference-math --profile ci --dtype float32": "19 s",
    "transformer-spec table --dtype float32 --jobs 2": "1 to 6 minutes",
    "transformer-spec board --jobs 2": "22 minutes alone",
    "transformer-spec mutants --jobs 2": "7 to 9 minutes alone",
}


def about(command: str) -> str:
    return FIGURES[command]
