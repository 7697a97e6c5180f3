"""Full-text search moves to its own narrow table, community_questionsearch (PostgreSQL only).

Why: a search reads, for every match, when it was asked and what the filters look at. With
the document on community_question, each match costs a page of the wide table (title, body,
body_html, two vectors: about 2.4 kB a row, three rows a page), and a two-word search over
200,000 questions read 1,700 such pages, most of them outside shared_buffers. The narrow
table holds one row per question that is not deleted: the document (title A, body B, the
answers C), created_at, product, hidden, answered, solved and the tag ids, about 450 bytes a
row, so the whole table stays in shared_buffers and a match costs a buffer hit.

Triggers keep it in step with community_question and community_question_tags, whatever writes
them (the services, the admin, a bulk UPDATE; the through table's rows are only ever inserted
and deleted, as Django's many-to-many does): every service keeps working unchanged, and
the services still write the answers' part into question.answers_vector. A deleted question
has no row. question.search_vector, the old trigger and its GIN index are dropped; the rows
that exist are copied over (the backfill), and the indexes are built after it.

Indexes: GIN on the document and on the tag ids (fastupdate off: a search never scans a
pending list), and newest-first btrees for the walks: all, per product, unanswered, solved.
On SQLite nothing is created (development searches by substring).
"""

import django.contrib.postgres.fields
import django.contrib.postgres.search
import django.db.models.deletion
from django.db import migrations, models

DOCUMENT = """
    CREATE OR REPLACE FUNCTION community_question_document(title text, body text, answers tsvector)
    RETURNS tsvector LANGUAGE sql IMMUTABLE AS $$
        SELECT setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
            || setweight(to_tsvector('english'::regconfig, coalesce(body, '')), 'B')
            || coalesce(answers, ''::tsvector)
    $$
"""

TAG_IDS = """
    coalesce((SELECT array_agg(tag_id ORDER BY tag_id) FROM community_question_tags
              WHERE question_id = {question}), '{{}}'::bigint[])
"""

FORWARD = [
    "DROP TRIGGER IF EXISTS community_question_search_vector ON community_question",
    "DROP FUNCTION IF EXISTS community_question_search_vector()",
    "DROP INDEX IF EXISTS question_search_idx",
    DOCUMENT,
    # A question's row follows its question. The document is rebuilt only when the text
    # changed (an answer, a flag or an acceptance updates the flags alone).
    f"""
    CREATE FUNCTION community_question_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.state = 'deleted' THEN
            DELETE FROM community_questionsearch WHERE question_id = NEW.id;
        ELSIF TG_OP = 'UPDATE' AND OLD.state <> 'deleted'
                AND NEW.title = OLD.title AND NEW.body = OLD.body
                AND NEW.answers_vector IS NOT DISTINCT FROM OLD.answers_vector THEN
            UPDATE community_questionsearch SET
                created_at = NEW.created_at, product_id = NEW.product_id, is_hidden = NEW.is_hidden,
                is_answered = NEW.answer_count > 0, is_solved = NEW.accepted_answer_id IS NOT NULL
            WHERE question_id = NEW.id AND (created_at, product_id, is_hidden, is_answered, is_solved)
                IS DISTINCT FROM (NEW.created_at, NEW.product_id, NEW.is_hidden,
                                  NEW.answer_count > 0, NEW.accepted_answer_id IS NOT NULL);
        ELSE
            INSERT INTO community_questionsearch AS search (question_id, document, created_at,
                product_id, is_hidden, is_answered, is_solved, tag_ids)
            VALUES (NEW.id, community_question_document(NEW.title, NEW.body, NEW.answers_vector),
                NEW.created_at, NEW.product_id, NEW.is_hidden, NEW.answer_count > 0,
                NEW.accepted_answer_id IS NOT NULL, {TAG_IDS.format(question="NEW.id")})
            ON CONFLICT (question_id) DO UPDATE SET document = EXCLUDED.document,
                created_at = EXCLUDED.created_at, product_id = EXCLUDED.product_id,
                is_hidden = EXCLUDED.is_hidden, is_answered = EXCLUDED.is_answered,
                is_solved = EXCLUDED.is_solved;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER community_question_search_sync
    AFTER INSERT OR UPDATE OF title, body, answers_vector, created_at, product_id, state, is_hidden,
        answer_count, accepted_answer_id ON community_question
    FOR EACH ROW EXECUTE FUNCTION community_question_search_sync()
    """,
    # Per statement, with the rows it changed: Django sets a question's tags with one INSERT
    # (and one DELETE), so the row is rewritten once, not once per tag.
    f"""
    CREATE FUNCTION community_question_tags_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE community_questionsearch SET tag_ids = {TAG_IDS.format(question="community_questionsearch.question_id")}
        WHERE question_id IN (SELECT question_id FROM changed);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER community_question_tags_added_search_sync
    AFTER INSERT ON community_question_tags REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION community_question_tags_search_sync()
    """,
    """
    CREATE TRIGGER community_question_tags_removed_search_sync
    AFTER DELETE ON community_question_tags REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION community_question_tags_search_sync()
    """,
    # The backfill: every question that exists, before the indexes (one build each, not one
    # insertion per row). Its foreign keys are checked now, not at commit, so that the indexes
    # can be built in the same transaction (no pending trigger events on the table).
    "SET CONSTRAINTS ALL IMMEDIATE",
    f"""
    INSERT INTO community_questionsearch (question_id, document, created_at, product_id, is_hidden,
        is_answered, is_solved, tag_ids)
    SELECT q.id, community_question_document(q.title, q.body, q.answers_vector), q.created_at,
        q.product_id, q.is_hidden, q.answer_count > 0, q.accepted_answer_id IS NOT NULL,
        {TAG_IDS.format(question="q.id")}
    FROM community_question q WHERE q.state <> 'deleted'
    """,
    """
    CREATE INDEX question_search_document_idx ON community_questionsearch
    USING gin (document) WITH (fastupdate = off)
    """,
    """
    CREATE INDEX question_search_tags_idx ON community_questionsearch
    USING gin (tag_ids) WITH (fastupdate = off)
    """,
    "CREATE INDEX question_search_created_idx ON community_questionsearch (created_at DESC)",
    "CREATE INDEX question_search_product_idx ON community_questionsearch (product_id, created_at DESC)",
    """
    CREATE INDEX question_search_unanswered_idx ON community_questionsearch (created_at DESC)
    WHERE NOT is_answered
    """,
    "CREATE INDEX question_search_solved_idx ON community_questionsearch (created_at DESC) WHERE is_solved",
    "SET CONSTRAINTS ALL DEFERRED",
    "ANALYZE community_questionsearch",
]

# Back to migration 0002: the document on the question itself, kept by its own trigger.
BACKWARD = [
    "DROP TRIGGER IF EXISTS community_question_tags_added_search_sync ON community_question_tags",
    "DROP TRIGGER IF EXISTS community_question_tags_removed_search_sync ON community_question_tags",
    "DROP FUNCTION IF EXISTS community_question_tags_search_sync()",
    "DROP TRIGGER IF EXISTS community_question_search_sync ON community_question",
    "DROP FUNCTION IF EXISTS community_question_search_sync()",
    """
    CREATE FUNCTION community_question_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector :=
            setweight(to_tsvector('english'::regconfig, coalesce(NEW.title, '')), 'A')
            || setweight(to_tsvector('english'::regconfig, coalesce(NEW.body, '')), 'B')
            || coalesce(NEW.answers_vector, ''::tsvector);
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER community_question_search_vector
    BEFORE INSERT OR UPDATE OF title, body, answers_vector ON community_question
    FOR EACH ROW EXECUTE FUNCTION community_question_search_vector()
    """,
    "UPDATE community_question SET search_vector = community_question_document(title, body, answers_vector)",
    "DROP FUNCTION IF EXISTS community_question_document(text, text, tsvector)",
    "CREATE INDEX question_search_idx ON community_question USING gin (search_vector)",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial"), ("community", "0004_unanswered_index")]
    operations = [
        migrations.CreateModel(
            name="QuestionSearch",
            fields=[
                (
                    "question",
                    models.OneToOneField(
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search",
                        serialize=False,
                        to="community.question",
                    ),
                ),
                ("document", django.contrib.postgres.search.SearchVectorField()),
                ("created_at", models.DateTimeField()),
                (
                    "product",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="catalog.product",
                    ),
                ),
                ("is_hidden", models.BooleanField()),
                ("is_answered", models.BooleanField()),
                ("is_solved", models.BooleanField()),
                (
                    "tag_ids",
                    django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), default=list, size=None),
                ),
            ],
        ),
        migrations.RunPython(forward, backward),
        migrations.RemoveField(model_name="question", name="search_vector"),
    ]
