# EXERCISE 04-app-scores
# The reference change: a copy of apps/rag_chat.py whose source_label also shows the score.
my_app_file = "solutions/04-app-scores/rag_chat.py"
