from citeline.cli.main import app

app(prog_name="citeline")
