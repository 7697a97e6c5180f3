"""Full-text search: the narrow search table follows every write to questions, answers, tags and
moderation; phrases; the walk and the bitmap find the same questions; migration 0005 copies the
questions that exist and goes back."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from community import selectors
from community.models import Question
from community.selectors import QuestionSearch, SearchFilters, phrases_as_and, questions_search
from community.services.moderation import post_flag, question_delete
from community.services.posts import answer_post, question_edit
from community.services.votes import answer_accept

from ..factories import UserFactory
from .conftest import BODY, ask, member

pytestmark = pytest.mark.django_db


def search(viewer=None, **filters) -> list[Question]:
    return list(questions_search(filters=SearchFilters(**filters), viewer=viewer))


def search_rows(question: Question) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT is_hidden, is_answered, is_solved, tag_ids FROM community_questionsearch WHERE question_id = %s",
            [question.pk],
        )
        return cursor.fetchall()


def test_the_search_follows_edits_answers_tags_acceptance_flags_and_deletion(policies, tracker, settings):
    settings.COMMUNITY_FLAGS_TO_HIDE = 1
    asker = member(reputation=1000)
    question = ask(asker, tracker, title="Exporting a board to CSV", tags=["boards"])
    assert search(text="csv") == [question]
    assert search(text="csv", tag="boards", unanswered=True, product="tracker") == [question]
    assert search(text="csv", product="wiki") == [] and search(text="csv", tag="nosuchtag") == []

    question_edit(question_id=question.pk, editor=asker, title="Exporting a board to a spreadsheet", body=BODY, tags="exports")
    assert search(text="csv") == []
    assert search(text="spreadsheet", tag="exports") == [question] and search(text="spreadsheet", tag="boards") == []

    answer = answer_post(question_id=question.pk, author=member(reputation=100), body="Use the webhook export endpoint instead.")
    assert search(text="webhook endpoint") == [question]
    assert search(text="spreadsheet", unanswered=True) == [] and search(text="spreadsheet", solved=True) == []
    answer_accept(user=asker, answer_id=answer.pk)
    assert search(text="spreadsheet", solved=True) == [question]

    post_flag(user=member(reputation=20), answer_id=answer.pk, reason="spam")  # hidden: its text leaves the search
    assert search(text="webhook endpoint") == [] and search(text="spreadsheet") == [question]
    post_flag(user=member(reputation=20), question_id=question.pk, reason="spam")
    staff = UserFactory(is_staff=True)
    assert search(text="spreadsheet") == [] and search(staff, text="spreadsheet") == [question]
    assert search_rows(question)[0][:3] == (True, False, True)  # hidden; its only answer hidden too: unanswered

    question_delete(moderator=staff, question_id=question.pk)
    assert search(staff, text="spreadsheet") == [] and search_rows(question) == []


def test_phrases_match_words_in_that_order(policies, tracker):
    author = member(reputation=1000)
    in_order = ask(author, tracker, title="The webhook export fails", body=BODY)
    ask(author, tracker, title="Export of a webhook list", body=BODY)
    assert search(text='"webhook export"') == [in_order]
    assert search(text='"webhook export" -fails') == []
    assert search(text="webhook -\"webhook export\"") == [q for q in search(text="webhook") if q != in_order]


def test_phrases_become_ands_for_the_gin_index_except_under_a_not():
    assert phrases_as_and("'filter' <-> 'trigger'") == "'filter' & 'trigger'"
    assert phrases_as_and("'a' <2> 'b' & 'c'") == "'a' & 'b' & 'c'"
    assert phrases_as_and("'it''s' <-> 'x<->y'") == "'it''s' & 'x<->y'"
    assert phrases_as_and("'a!' <-> 'b'") == "'a!' & 'b'"  # a ! inside a lexeme is no NOT
    assert phrases_as_and("'a' & !( 'b' <-> 'c' )") == "'a' & !( 'b' <-> 'c' )"


def test_the_walk_and_the_bitmap_find_and_rank_the_same(policies, tracker, monkeypatch):
    author = member(reputation=1000)
    best = ask(author, tracker, title="Webhook webhook retries for webhooks", body="Webhook delivery retries. " + BODY)
    newest = ask(author, tracker, title="Another question on boards", body="The webhook fires twice here, " + BODY)
    ask(author, tracker, title="Nothing to do with the search", body=BODY)
    monkeypatch.setattr(selectors, "MAX_RESULTS", 2)
    bitmap = search(text="webhook")
    assert bitmap == [best, newest]

    walks = []
    walk = QuestionSearch.walk

    def walk_counted(self, cursor, *, bound):
        found = walk(self, cursor, bound=bound)
        walks.append((bound, found))
        return found

    monkeypatch.setattr(QuestionSearch, "walk", walk_counted)
    monkeypatch.setattr(QuestionSearch, "walk_length", lambda self, cursor, questions: 3)  # as if matches were dense
    assert search(text="webhook") == bitmap and walks[-1] == (6, [best.pk, newest.pk])
    monkeypatch.setattr(QuestionSearch, "walk_length", lambda self, cursor, questions: 1)  # a walk that stops short
    assert search(text="webhook") == bitmap and len(walks[-1][1]) == 1  # the bitmap finished the search
    monkeypatch.setattr(selectors, "MAX_RESULTS", 1)  # only the newest match is ranked
    assert search(text="webhook") == [newest]


def test_the_estimate_picks_the_walk_only_for_dense_matches(policies, tracker):
    author = member(reputation=1000)
    for number in range(30):
        ask(author, tracker, title=f"Webhook question number {number}", body=BODY if number else "A rare word: okta. " + BODY)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE community_questionsearch")
        dense = QuestionSearch(filters="true", candidate_filters="true", parameters={"query": "'webhook'", "candidates": "'webhook'"})
        rare = QuestionSearch(filters="true", candidate_filters="true", parameters={"query": "'okta'", "candidates": "'okta'"})
        nothing = QuestionSearch(filters="true", candidate_filters="true", parameters={"query": "'nothing'", "candidates": "'nothing'"})
        # A forum of 30 questions is too small to walk for 500 matches ...
        assert dense.walk_length(cursor, questions=30) == 0
        # ... one of 2,000 where every question matches is not; rare words never walk.
        assert dense.walk_length(cursor, questions=2_000) == 500
        assert rare.walk_length(cursor, questions=2_000) == 0 and nothing.walk_length(cursor, questions=2_000) == 0
        assert dense.walk_length(cursor, questions=-1) == 0  # never analysed


@pytest.mark.django_db(transaction=True)
def test_migration_0005_copies_the_questions_that_exist_and_goes_back(policies, tracker):
    author = member(reputation=1000)
    executor = MigrationExecutor(connection)
    executor.migrate([("community", "0004_unanswered_index")])
    try:
        # On the old schema (the document on the question, kept by migration 0002's trigger),
        # through the services as they were used then.
        question = ask(author, tracker, title="Exporting a board to CSV", tags=["boards"])
        answer_post(question_id=question.pk, author=member(reputation=100), body="Use the webhook export endpoint instead.")
        gone = ask(author, tracker, title="A question that was deleted", body=BODY)
        Question.objects.filter(pk=gone.pk).update(state=Question.State.DELETED)
        executor = MigrationExecutor(connection)
        executor.migrate([("community", "0005_search_table")])
        assert search(text="webhook csv", tag="boards") == [question] and search(text="deleted") == []
        assert search_rows(question)[0][:3] == (False, True, False)

        executor = MigrationExecutor(connection)
        executor.migrate([("community", "0004_unanswered_index")])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM community_question WHERE search_vector @@ websearch_to_tsquery('english', 'webhook csv')"
            )
            assert cursor.fetchall() == [(question.pk,)]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def planner_settings() -> tuple:
    with connection.cursor() as cursor:  # pytest-django's transaction is still open
        cursor.execute(
            "SELECT current_setting('enable_seqscan'), current_setting('enable_indexscan'), "
            "current_setting('enable_bitmapscan'), current_setting('max_parallel_workers_per_gather')"
        )
        return cursor.fetchone()


def test_a_search_inside_a_transaction_gives_back_the_planner_settings(policies, tracker, monkeypatch):
    ask(member(reputation=1000), tracker, title="Webhook retries for webhooks", body=BODY)
    before = planner_settings()
    monkeypatch.setattr(QuestionSearch, "walk_length", lambda self, cursor, questions: 3)
    for max_results in (1, 2):  # the walk, then the walk and the bitmap
        monkeypatch.setattr(selectors, "MAX_RESULTS", max_results)
        assert len(search(text="webhook")) == 1
        assert planner_settings() == before
