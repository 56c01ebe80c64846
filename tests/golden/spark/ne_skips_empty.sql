SELECT
  `t0`.`contactid`
FROM `contact` AS `t0`
WHERE
  `t0`.`statecode` = 0
  AND (
    `t0`.`country` <> '' AND NOT (
      LOWER(`t0`.`country`) = LOWER('UK')
    )
  )
ORDER BY
  `t0`.`contactid`
