"""Building blocks of the sample world: catalogue, population (sellers, groups, tastes) and the daily simulation."""
