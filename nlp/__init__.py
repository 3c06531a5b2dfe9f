"""Pure text and ML: cleaning, jieba, keywords, profiles, audiences. No I/O, no database, no bot."""
