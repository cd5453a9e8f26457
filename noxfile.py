"""nox sessions: `nox` runs lint, typecheck and tests (the README's test command).

torch comes from constraints.txt (the pinned CPU build on this project's machines); the
package itself keeps an open torch range for users.
"""

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_missing_interpreters = True

CONSTRAINTS = ("-c", "constraints.txt")


def install_project(session: nox.Session, extras: str) -> None:
    # A regular (non-editable) install: sessions test the package as users get it.
    session.install(*CONSTRAINTS, f".[{extras}]")


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    install_project(session, "test,hf")
    session.install(*CONSTRAINTS, "mypy", "nox")
    session.run("mypy", "-p", "transformer_spec")
    session.run("mypy", "--strict", "tests", "tools", "noxfile.py")


@nox.session
def tests(session: nox.Session) -> None:
    install_project(session, "test,hf")
    session.run("pytest", "-n", "auto", *session.posargs)
