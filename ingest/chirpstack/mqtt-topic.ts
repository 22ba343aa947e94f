/**
 * ChirpStack v4 MQTT integration topic layout:
 * `application/{applicationId}/device/{devEui}/event/{up|join|status|ack|txack|log|location|integration}`.
 */
export const eventTypes = ['up', 'join', 'status', 'ack', 'txack', 'log', 'location', 'integration'] as const;
export type EventType = (typeof eventTypes)[number];

export interface EventTopic {
  applicationId: string;
  devEui: string;
  eventType: EventType;
}

export function parseEventTopic(topic: string): EventTopic | undefined {
  const parts = topic.split('/');
  if (parts.length !== 6 || parts[0] !== 'application' || parts[2] !== 'device' || parts[4] !== 'event')
    return undefined;
  const [, applicationId, , devEui, , eventType] = parts as [string, string, string, string, string, string];
  if (!(eventTypes as readonly string[]).includes(eventType)) return undefined;
  return { applicationId, devEui: devEui.toUpperCase(), eventType: eventType as EventType };
}

export function eventTopic(applicationId: string, devEui: string, eventType: EventType): string {
  return `application/${applicationId}/device/${devEui.toLowerCase()}/event/${eventType}`;
}
