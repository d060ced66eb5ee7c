"""The reactor's pure side: what a rule is (``reaction``), its settings, and the rules themselves
(``rules``, in the order the reactor applies them). The projector never imports this package."""
