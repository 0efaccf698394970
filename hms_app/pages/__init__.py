"""One module per role's page group; each page's ``on_load`` starts with the session guard."""
