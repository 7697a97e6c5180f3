"""The funnel's per-person progress (experiments/funnel.py): the FunnelProgress, FunnelVisit,
FunnelDay and FunnelChange tables, the triggers on experiments_event that mark whose funnel events
changed, and a mark for every person who ever signed up and every browser that opened the
signup page, so that the first refresh (the beat task, within a minute, or the first funnel
page) computes them all. PostgreSQL only: on SQLite the funnel
walks the events and no trigger is made.

The event names are written here as they are today; a change of FUNNEL_STEPS needs a
migration replacing the functions (tests/experiments/test_funnel_progress.py checks that
every step's events leave a mark).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

PERSON_EVENTS = "'signed_up', 'email_verified', 'organization_created'"
ORGANIZATION_EVENTS = (
    "'trial_started', 'subscription_started', 'environment_active', 'invite_sent', 'invite_accepted', "
    "'joined_by_domain', 'subscription_paid'"
)
MARKED = f"""
    CASE WHEN changed.name IN ({PERSON_EVENTS}) THEN changed.user_id END,
    CASE WHEN changed.name IN ({ORGANIZATION_EVENTS}) THEN changed.organization_id END,
    CASE WHEN changed.name = 'signup_started' THEN changed.distinct_id ELSE '' END
"""
WHERE_MARKED = f"""
    (changed.name IN ({PERSON_EVENTS}) AND changed.user_id IS NOT NULL)
    OR (changed.name IN ({ORGANIZATION_EVENTS}) AND changed.organization_id IS NOT NULL)
    OR changed.name = 'signup_started'
"""

CREATE = [
    # Inserts and deletes: once per statement, from its transition table (a batch of a thousand
    # events is one INSERT of marks).
    f"""CREATE FUNCTION experiments_funnel_events_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO experiments_funnelchange (user_id, organization_id, distinct_id)
    SELECT DISTINCT {MARKED} FROM changed WHERE {WHERE_MARKED};
    RETURN NULL;
END $$""",
    """CREATE TRIGGER experiments_event_funnel_insert AFTER INSERT ON experiments_event
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION experiments_funnel_events_changed()""",
    """CREATE TRIGGER experiments_event_funnel_delete AFTER DELETE ON experiments_event
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION experiments_funnel_events_changed()""",
    # Updates: the forward runs update every event (sent_at, attempts, leases); only a change of
    # what the funnel reads fires, before and after both marked.
    f"""CREATE FUNCTION experiments_funnel_event_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO experiments_funnelchange (user_id, organization_id, distinct_id)
    SELECT DISTINCT {MARKED}
    FROM (VALUES (OLD.name, OLD.user_id, OLD.organization_id, OLD.distinct_id),
                 (NEW.name, NEW.user_id, NEW.organization_id, NEW.distinct_id))
        AS changed (name, user_id, organization_id, distinct_id)
    WHERE {WHERE_MARKED};
    RETURN NULL;
END $$""",
    """CREATE TRIGGER experiments_event_funnel_update AFTER UPDATE ON experiments_event FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.user_id IS DISTINCT FROM NEW.user_id
          OR OLD.distinct_id IS DISTINCT FROM NEW.distinct_id
          OR OLD.organization_id IS DISTINCT FROM NEW.organization_id OR OLD.occurred_at IS DISTINCT FROM NEW.occurred_at
          OR (OLD.properties -> 'via_invite') IS DISTINCT FROM (NEW.properties -> 'via_invite'))
    EXECUTE FUNCTION experiments_funnel_event_updated()""",
    # Everyone who signed up so far and every browser, computed by the first refresh.
    """INSERT INTO experiments_funnelchange (user_id, distinct_id)
    SELECT DISTINCT user_id, '' FROM experiments_event WHERE name = 'signed_up' AND user_id IS NOT NULL""",
    """INSERT INTO experiments_funnelchange (distinct_id)
    SELECT DISTINCT distinct_id FROM experiments_event WHERE name = 'signup_started'""",
]
DROP = [
    "DROP TRIGGER IF EXISTS experiments_event_funnel_update ON experiments_event",
    "DROP TRIGGER IF EXISTS experiments_event_funnel_delete ON experiments_event",
    "DROP TRIGGER IF EXISTS experiments_event_funnel_insert ON experiments_event",
    "DROP FUNCTION IF EXISTS experiments_funnel_event_updated()",
    "DROP FUNCTION IF EXISTS experiments_funnel_events_changed()",
]


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_user_time_zone_country'),
        ('experiments', '0003_event_lease_and_dead_letter'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='FunnelChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.BigIntegerField(blank=True, null=True)),
                ('organization_id', models.BigIntegerField(blank=True, null=True)),
                ('distinct_id', models.CharField(blank=True, max_length=64)),
            ],
        ),
        migrations.CreateModel(
            name='FunnelDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('step', models.PositiveSmallIntegerField()),
                ('bucket', models.PositiveSmallIntegerField()),
                ('people', models.IntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name='FunnelProgress',
            fields=[
                ('user_id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('signed_up_at', models.DateTimeField()),
                ('email_verified_at', models.DateTimeField(blank=True, null=True)),
                ('organization_created_at', models.DateTimeField(blank=True, null=True)),
                ('product_started_at', models.DateTimeField(blank=True, null=True)),
                ('workspace_ready_at', models.DateTimeField(blank=True, null=True)),
                ('invite_sent_at', models.DateTimeField(blank=True, null=True)),
                ('colleague_joined_at', models.DateTimeField(blank=True, null=True)),
                ('paid_at', models.DateTimeField(blank=True, null=True)),
                ('last_step_at', models.DateTimeField()),
                ('time_to_value', models.BigIntegerField(blank=True, null=True)),
                ('email_verified_after', models.BigIntegerField(blank=True, null=True)),
                ('organization_created_after', models.BigIntegerField(blank=True, null=True)),
                ('product_started_after', models.BigIntegerField(blank=True, null=True)),
                ('workspace_ready_after', models.BigIntegerField(blank=True, null=True)),
                ('invite_sent_after', models.BigIntegerField(blank=True, null=True)),
                ('colleague_joined_after', models.BigIntegerField(blank=True, null=True)),
                ('paid_after', models.BigIntegerField(blank=True, null=True)),
            ],
        ),
        migrations.CreateModel(
            name='FunnelVisit',
            fields=[
                ('event_id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('distinct_id', models.CharField(db_index=True, max_length=64)),
                ('occurred_at', models.DateTimeField()),
                ('previous_at', models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(condition=models.Q(('name', 'signup_started')), fields=['distinct_id', 'occurred_at'], name='event_signup_started_idx'),
        ),
        migrations.AddConstraint(
            model_name='funnelday',
            constraint=models.UniqueConstraint(fields=('day', 'step', 'bucket'), name='funnel_day_once'),
        ),
        migrations.AddField(
            model_name='funnelprogress',
            name='organization',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.organization'),
        ),
        migrations.AddIndex(
            model_name='funnelvisit',
            index=models.Index(fields=['occurred_at'], include=('previous_at',), name='funnel_visit_time_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelvisit',
            index=models.Index(fields=['previous_at'], include=('occurred_at',), name='funnel_visit_previous_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['signed_up_at'], name='funnel_progress_signup_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['last_step_at'], name='funnel_progress_last_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['email_verified_after'], include=('signed_up_at', 'email_verified_at'), name='funnel_verified_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['organization_created_after'], include=('signed_up_at', 'organization_created_at'), name='funnel_organization_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['product_started_after'], include=('signed_up_at', 'product_started_at'), name='funnel_product_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['workspace_ready_after'], include=('signed_up_at', 'workspace_ready_at'), name='funnel_workspace_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['invite_sent_after'], include=('signed_up_at', 'invite_sent_at'), name='funnel_invite_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['colleague_joined_after'], include=('signed_up_at', 'colleague_joined_at'), name='funnel_colleague_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['paid_after'], include=('signed_up_at', 'paid_at'), name='funnel_paid_idx'),
        ),
        migrations.AddIndex(
            model_name='funnelprogress',
            index=models.Index(fields=['time_to_value'], include=('signed_up_at', 'workspace_ready_at'), name='funnel_value_idx'),
        ),
        migrations.RunPython(triggers_create, triggers_drop),
    ]
