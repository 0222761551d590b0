from django.core.management.base import BaseCommand

from projects.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo user and the demo project of synthetic shapes (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, default=24)
        parser.add_argument("--size", type=int, default=128)

    def handle(self, *args, images: int, size: int, **options):
        result = demo_seed(images=images, size=size)
        state = "created" if result.created else "already there"
        self.stdout.write(self.style.SUCCESS(
            f"Demo project '{result.project.name}' {state} (id {result.project.id}).\n"
            f"Log in as  user: {result.username}  password: {result.password}"))
