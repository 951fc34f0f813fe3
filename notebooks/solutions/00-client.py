# EXERCISE 00-client
import openai

# the two values connect() found and printed; on another machine, copy them from its output
my_client = openai.OpenAI(base_url=lab.base_url, api_key=lab.api_key or "not-needed")
