"""One module per resource; importing a module registers its routes on the resolver."""
