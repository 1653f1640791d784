"""The FastAPI example of sfoauth: connect a Salesforce org, call its REST API.

Run it with ``sfoauth demo fastapi`` (emulator included), or by hand::

    sfoauth emulator &                      # http://127.0.0.1:8999
    uvicorn --app-dir example_projects/fastapi_app --factory \
        fastapi_example.main:create_app --port 8000

See ``example_projects/README.md`` for the environment variables that point it at a
real org.
"""
