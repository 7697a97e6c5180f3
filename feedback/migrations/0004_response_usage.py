"""Each answer keeps the respondent's use of the product in the 30 whole UTC days before it
(days active, lifecycle state), snapshotted at submit like tenure. Both columns are added
without rewriting the table (one nullable, one with a database default), so this migration
holds the table's lock for an instant; answers stored before it are filled in by 0006, a
batch per transaction.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0003_report_opt_out"),
    ]

    operations = [
        migrations.AddField(
            model_name="response",
            name="active_days",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="response",
            name="usage_state",
            field=models.CharField(
                blank=True,
                choices=[
                    ("new", "New"),
                    ("returning", "Returning"),
                    ("resurrecting", "Back after a break"),
                    ("dormant", "Dormant"),
                    ("none", "No activity reported"),
                ],
                max_length=16,
                default="",
                db_default="",
            ),
        ),
    ]
