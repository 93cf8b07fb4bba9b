"""Figures in one fixed style: the chapters' plots and tables (:mod:`.style`), the diagrams of
the network (:mod:`.diagrams`) and the design-space figures of the sweep (:mod:`.design_spaces`)."""
