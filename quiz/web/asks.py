"""What the console asks before each costly action, from plain values: the templates' hx-confirm
(`{{ ask.end_round(...) }}`) and the confirmation page (quiz/web/confirm.py) read these, so the
dialog and the page never say it differently."""


def _has(n: int) -> str:
    return "haven't" if n != 1 else "hasn't"


def start_round(number: int, in_game: int) -> str:
    return f"Start round {number} and text {in_game} players their links?"


def end_round(number: int, unstarted: int, unsent: int, unreviewed: int = 0) -> str:
    photos = (f" {unreviewed} photo(s) not reviewed yet will count as not right."
              if unreviewed else "")
    return (f"End round {number} now? {unstarted} invited player{'s' if unstarted != 1 else ''} "
            f"{_has(unstarted)} pressed Start yet ({unsent} of them {_has(unsent)} had their link "
            "sent yet). Everyone who hasn't answered is out, and so is the bottom half." + photos)


def reopen_round(number: int) -> str:
    return f"Reopen round {number}? Everyone it knocked out is back in, and no results go out."


def disqualify(name: str) -> str:
    return f"Disqualify {name}? They are out of the game for good."


def reinstate(name: str) -> str:
    return f"Bring {name} back into the game?"


def remove_account(username: str) -> str:
    return f"Remove {username}'s account? They can no longer log in."


def load_bank() -> str:
    return "Load this question bank? Rounds not started yet are replaced by what the file says."


def cancel_reminder() -> str:
    return "Cancel this reminder?"


def delete_question(number: int, index: int) -> str:
    return f"Delete question {index} of round {number}?"


def reset_wording(what: str, kind: str, language_name: str) -> str:
    return (f"Reset the {kind.replace('_', ' ')} {what} in {language_name} to the default wording? "
            "What you wrote for it is lost.")
