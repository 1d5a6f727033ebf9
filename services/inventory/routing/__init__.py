"""Routing: which location an order ships from. Location records (country, postal code,
coordinates, priority, the countries it ships to, cut-off), routing strategies and rules
(`domain`, pure; `places`, the country data it uses), the policy from `OMS_ROUTING` (`config`),
and the location API (`routes`, SQL in `store`)."""
