-- returns: tables come with the saga issue.
SELECT 1;
