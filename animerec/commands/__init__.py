"""One module per subcommand (see animerec.cli), each with `register(subparsers)`."""


def examples(*command_lines: str) -> str:
    """A subcommand's --help epilog: its example command lines under "examples:"."""
    return "examples:\n" + "\n".join(f"  {line}" for line in command_lines)
