SELECT
  `t0`.`contactid`
FROM `contact` AS `t0`
WHERE
  `t0`.`statecode` = 0
  AND (
    (
      LOWER(TRANSLATE(`t0`.`jobtitle`, 'Σİ', 'σi')) LIKE LOWER(TRANSLATE('%MANAGER%', 'Σİ', 'σi')) ESCAPE '!'
      OR LOWER(TRANSLATE(`t0`.`jobtitle`, 'Σİ', 'σi')) LIKE LOWER(TRANSLATE('R!_D%', 'Σİ', 'σi')) ESCAPE '!'
    )
  )
ORDER BY
  `t0`.`contactid`
