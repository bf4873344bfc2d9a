"""Demo users and gigs for `make run` (API_CONTRACT.md, "Demo data"). Idempotent; never in production."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Role, User
from gigs.models import Gig

DEMO_PASSWORD = "password123"
DEMO_USERS = [
    ("student@example.com", Role.STUDENT, "Sam", "Student"),
    ("teacher@example.com", Role.TEACHER, "Tara", "Teacher"),
    ("admin@example.com", Role.ADMIN, "Ada", "Admin"),
]
DEMO_GIGS = [
    ("Conversational Spanish", "Relaxed conversation practice for intermediate learners.", "Spanish", 5000, 60),
    ("French for travellers", "Everything you need for your next trip to France.", "French", 3500, 45),
    ("Business English", "Meetings, e-mails and presentations.", "English", 7550, 90),
]


class Command(BaseCommand):
    help = "Create the demo student, teacher and admin (password123) and the teacher's gigs. Safe to re-run."

    def handle(self, *args, **options):
        if settings.SETTINGS_MODULE.endswith(".production"):
            raise CommandError("Refusing to load demo data with production settings.")
        with transaction.atomic():
            users = {}
            for email, role, first, last in DEMO_USERS:
                user = User.objects.filter(email=email).first()
                if user is None:
                    if role == Role.ADMIN:
                        user = User.objects.create_superuser(email, DEMO_PASSWORD, first_name=first, last_name=last)
                    else:
                        user = User.objects.create_user(email, DEMO_PASSWORD, role=role, first_name=first, last_name=last)
                    self.stdout.write(f"created {role} {email}")
                users[role] = user
            teacher = users[Role.TEACHER]
            for title, description, language, price_cents, minutes in DEMO_GIGS:
                _, created = Gig.objects.get_or_create(
                    teacher=teacher,
                    title=title,
                    defaults={"description": description, "language": language,
                              "price_cents": price_cents, "duration_minutes": minutes},
                )
                if created:
                    self.stdout.write(f"created gig {title!r}")
        self.stdout.write(self.style.SUCCESS(
            "Demo logins (password123): student@example.com, teacher@example.com, admin@example.com"
        ))
