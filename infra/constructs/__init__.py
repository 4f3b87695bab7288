"""One construct per capability; the tenant stack composes them."""
