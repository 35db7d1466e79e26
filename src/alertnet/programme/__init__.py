"""The mahalla programme (DESIGN §12): coverage against targets, exemplary streets and houses,
the figures of the mahalla page and its monthly report, and the mahallas' counts as admins
keep them (PATCH, CSV import)."""
