"""Load balancing: the desired table (pure), the plan to reach it (pure) and the backends."""
