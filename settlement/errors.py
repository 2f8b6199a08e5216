"""Errors that reach users as one clear line (never a traceback), with their exit codes."""


class SettlementError(Exception):
    """Base class: an error whose message is meant for the user.

    `details`: further lines shown under the message (e.g. what a refused run would have
    changed, company by company)."""

    exit_code = 1

    def __init__(self, *args: object, details: list[str] | None = None) -> None:
        super().__init__(*args)
        self.details = details or []


class UsageError(SettlementError):
    """Bad command-line arguments (exit 2)."""

    exit_code = 2


class ConfigError(SettlementError):
    """A configuration file breaks the rules of SPEC §3 (exit 2). Names the file and the key."""

    exit_code = 2

    def __init__(self, path: object, key: str, problem: str) -> None:
        self.path, self.key, self.problem = str(path), key, problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"配置错误 {where}: {problem}")


class InputFileError(SettlementError):
    """An input file that cannot be read at all (exit 2). Names the file and the problem."""

    exit_code = 2

    def __init__(self, path: object, problem: str) -> None:
        self.path, self.problem = str(path), problem
        super().__init__(f"无法读取输入文件 {self.path}: {problem}")


class RefusedError(SettlementError):
    """An action the month's state forbids, e.g. re-running a sealed month (exit 2)."""

    exit_code = 2


class ReplaceRefused(RefusedError):
    """A run that would replace a month's current run without --replace (exit 2): carries what
    it would have changed, per company (`changes`), for the CLI and the portal to show."""

    def __init__(self, message: str, changes: list[dict], details: list[str]) -> None:
        super().__init__(message, details=details)
        self.changes = changes
