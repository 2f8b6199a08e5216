"""Errors that reach users as one clear line (never a traceback), with their exit codes."""


class SettlementError(Exception):
    """Base class: an error whose message is meant for the user."""

    exit_code = 1


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
