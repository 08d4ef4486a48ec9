"""Reports: the typed ``report.json`` (one pydantic model, its JSON Schema) and the HTML
page made from it. TF-free; above ``compressor.planning`` (a report holds its plan).
"""
