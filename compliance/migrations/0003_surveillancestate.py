from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_throttletrip"),
    ]

    operations = [
        migrations.CreateModel(
            name="SurveillanceState",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("stage", models.CharField(max_length=64, unique=True)),
                ("state", models.BinaryField()),
                ("event_ts", models.DateTimeField(blank=True, null=True)),
                ("events", models.PositiveBigIntegerField(default=0)),
                ("saved_at", models.DateTimeField()),
            ],
        ),
    ]
