"""Full-text search on PostgreSQL: a trigger keeps question.search_vector, the whole document
(title A, body B, and the answers' vector C that the services write into answers_vector), and
one GIN index serves it. Nothing on SQLite (development searches by substring)."""

from django.db import migrations

FORWARD = [
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
    "CREATE INDEX question_search_idx ON community_question USING gin (search_vector)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS question_search_idx",
    "DROP TRIGGER IF EXISTS community_question_search_vector ON community_question",
    "DROP FUNCTION IF EXISTS community_question_search_vector()",
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
    dependencies = [("community", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
