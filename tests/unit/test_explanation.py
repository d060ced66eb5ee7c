from events.errors import NotFound
from processors.cli.context import EXIT_NOT_FOUND
from projections.explanation import Explanation, Section


def test_an_explanation_reads_as_text_and_as_json_with_the_same_content():
    answer = Explanation("Why?", "order:1", "Because.", (Section("Errors", ("One.", "Two.")),), {"n": 2}, ("e1",))
    assert answer.text() == "Because.\n\nErrors:\n  One.\n  Two."
    assert answer.to_dict() == {"question": "Why?", "subject": "order:1", "answer": "Because.",
                                "sections": [{"title": "Errors", "sentences": ["One.", "Two."]}],
                                "facts": {"n": 2}, "event_ids": ["e1"]}


def test_not_found_is_its_own_exit_code_and_says_what():
    assert EXIT_NOT_FOUND == 4
    assert str(NotFound("order SO-1")) == "not found: order SO-1"
