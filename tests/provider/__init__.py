"""Real provider clients on real workers: string models (`openai:...`) built by the stock
`langchain-openai` client against the fake provider in `tests.support.fake_provider`."""
