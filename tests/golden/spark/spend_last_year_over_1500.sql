WITH `r1` AS (
  SELECT
    `t1`.`contactid` AS `k`
  FROM `order` AS `t1`
  WHERE
    NOT `t1`.`contactid` IS NULL
    AND `t1`.`ts` BETWEEN CAST('2025-10-27 12:00:00' AS TIMESTAMP) AND CAST('2026-10-27 12:00:00' AS TIMESTAMP)
  GROUP BY
    `t1`.`contactid`
  HAVING
    COALESCE(SUM(`t1`.`amount`), 0) > 1500
)
SELECT
  `t0`.`contactid`
FROM `contact` AS `t0`
WHERE
  `t0`.`statecode` = 0
  AND (
    `t0`.`contactid` IN (
      SELECT
        `k`
      FROM `r1`
    )
  )
ORDER BY
  `t0`.`contactid`
