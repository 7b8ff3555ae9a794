"""The developer portal: personal signed links, each developer's view of a case, their answers."""
