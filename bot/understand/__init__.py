"""The analysis stage: feeds nlp/ from storage/ and stores what it finds."""
