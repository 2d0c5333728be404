-- A dispute's lifecycle beyond its status. `loss_reason` is part of the object. The funds a
-- dispute moved are not: Stripe says so in events of their own
-- (`issuing_dispute.funds_reinstated`, `.funds_rescinded`), so each is kept as the time of its
-- first such event, set once whatever order events arrive in and never cleared by a newer
-- version of the object. Spend is not changed by them (README, "Disputes").
ALTER TABLE disputes
    ADD COLUMN loss_reason text,
    ADD COLUMN funds_reinstated_at bigint,
    ADD COLUMN funds_rescinded_at bigint;
UPDATE disputes d
   SET loss_reason = nullif(e.payload->'data'->'object'->>'loss_reason', '')
  FROM stripe_events e
 WHERE e.event_id = d.version_event_id;
UPDATE disputes d
   SET funds_reinstated_at = (SELECT min(e.created) FROM stripe_events e
                               WHERE e.event_type = 'issuing_dispute.funds_reinstated'
                                 AND e.payload->'data'->'object'->>'id' = d.id),
       funds_rescinded_at = (SELECT min(e.created) FROM stripe_events e
                              WHERE e.event_type = 'issuing_dispute.funds_rescinded'
                                AND e.payload->'data'->'object'->>'id' = d.id);
