"""The local review web page (``huaxiang review``): FastAPI app plus a static page."""
