from flowevo.cli import app

app()
