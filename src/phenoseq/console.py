"""Rich consoles shared by the CLI commands and progress bars (stdout for results, stderr for messages and bars)."""

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
