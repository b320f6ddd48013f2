"""The question bank's YAML read node by node: every problem is a BankError naming its line.

questions.py reads rounds with these, and each kind in question_types.py its own questions.
"""
import yaml

from .errors import QuizError


class BankError(QuizError):
    """A problem in the file, with the line it is on; nothing of the bank was loaded."""

    status = 422

    def __init__(self, line: int | None, problem: str):
        self.line, self.problem = line, problem
        super().__init__(f"line {line}: {problem}" if line else problem, code="bad_bank")


def line_of(node) -> int:
    """The node's line in the file (from 1)."""
    return node.start_mark.line + 1


def mapping(node, what: str, allowed: set[str]) -> dict:
    """A mapping's value nodes by key; a key not in `allowed`, or twice, is a BankError."""
    if not isinstance(node, yaml.MappingNode):
        raise BankError(line_of(node), f"{what} should be a mapping of keys to values.")
    result = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if key not in allowed:
            raise BankError(line_of(key_node), f"unknown key '{key}' in {what} "
                                               f"(expected one of: {', '.join(sorted(allowed))}).")
        if key in result:
            raise BankError(line_of(key_node), f"'{key}' appears twice in {what}.")
        result[key] = value_node
    return result


def sequence(node, what: str) -> list:
    """A list's item nodes."""
    if not isinstance(node, yaml.SequenceNode):
        raise BankError(line_of(node), f"{what} should be a list.")
    return node.value


def scalar(node, what: str, kind, check=None, problem: str = ""):
    """A typed scalar: numbers through PyYAML's resolver, text exactly as written."""
    if not isinstance(node, yaml.ScalarNode):
        raise BankError(line_of(node), f"{what} should be a single value.")
    if kind is str:
        # Text as written: a choice `yes` or `42` is text to show, not a bool or a number.
        value = node.value
    else:
        value = yaml.safe_load(yaml.serialize(node))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    wrong_type = not isinstance(value, kind) or isinstance(value, bool) and kind is not bool
    if wrong_type or (check and not check(value)):
        raise BankError(line_of(node), f"{what} {problem or f'should be a {kind.__name__}'} "
                                       f"(got '{node.value}').")
    return value
