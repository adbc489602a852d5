"""The way in: the JSON Schema for editors, and `import` of a supervisord file, a Procfile or Compose."""
