"""All SQL lives here: schema, migrations, and the queries the bot runs. Imports config only."""
