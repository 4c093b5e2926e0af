"""Control-API wire schemas (pydantic), shared by daemon and client."""
