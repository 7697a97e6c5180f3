from common.exceptions import FlywheelError


class CatalogError(FlywheelError):
    """The catalog file was refused; `problems` names each product, field and problem."""

    default_message = "The catalog file is not valid."

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "The catalog file was refused, nothing was loaded:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )


class UnknownEdition(FlywheelError):
    default_message = "That product or edition does not exist."
