//! IE type numbers (TS 29.244 Table 8.1.2-1), checked against Wireshark's
//! `epan/dissectors/packet-pfcp.c` (`pfcp_ie_type[]`, TS 29.244 V17.5.0).

/// Create PDR (grouped).
pub const CREATE_PDR: u16 = 1;
/// PDI (grouped).
pub const PDI: u16 = 2;
/// Create FAR (grouped).
pub const CREATE_FAR: u16 = 3;
/// Forwarding Parameters (grouped).
pub const FORWARDING_PARAMETERS: u16 = 4;
/// Create URR (grouped).
pub const CREATE_URR: u16 = 6;
/// Create QER (grouped).
pub const CREATE_QER: u16 = 7;
/// Created PDR (grouped).
pub const CREATED_PDR: u16 = 8;
/// Update PDR (grouped).
pub const UPDATE_PDR: u16 = 9;
/// Update FAR (grouped).
pub const UPDATE_FAR: u16 = 10;
/// Update Forwarding Parameters (grouped).
pub const UPDATE_FORWARDING_PARAMETERS: u16 = 11;
/// Update URR (grouped).
pub const UPDATE_URR: u16 = 13;
/// Update QER (grouped).
pub const UPDATE_QER: u16 = 14;
/// Remove PDR (grouped).
pub const REMOVE_PDR: u16 = 15;
/// Remove FAR (grouped).
pub const REMOVE_FAR: u16 = 16;
/// Remove URR (grouped).
pub const REMOVE_URR: u16 = 17;
/// Remove QER (grouped).
pub const REMOVE_QER: u16 = 18;
/// Cause.
pub const CAUSE: u16 = 19;
/// Source Interface.
pub const SOURCE_INTERFACE: u16 = 20;
/// F-TEID.
pub const F_TEID: u16 = 21;
/// Network Instance.
pub const NETWORK_INSTANCE: u16 = 22;
/// Gate Status.
pub const GATE_STATUS: u16 = 25;
/// MBR.
pub const MBR: u16 = 26;
/// Precedence.
pub const PRECEDENCE: u16 = 29;
/// Reporting Triggers.
pub const REPORTING_TRIGGERS: u16 = 37;
/// Report Type.
pub const REPORT_TYPE: u16 = 39;
/// Destination Interface.
pub const DESTINATION_INTERFACE: u16 = 42;
/// UP Function Features.
pub const UP_FUNCTION_FEATURES: u16 = 43;
/// Apply Action.
pub const APPLY_ACTION: u16 = 44;
/// PFCPSMReq-Flags (8.2.31).
pub const PFCPSMREQ_FLAGS: u16 = 49;
/// PDR ID.
pub const PDR_ID: u16 = 56;
/// F-SEID.
pub const F_SEID: u16 = 57;
/// Node ID.
pub const NODE_ID: u16 = 60;
/// Measurement Method.
pub const MEASUREMENT_METHOD: u16 = 62;
/// Usage Report Trigger.
pub const USAGE_REPORT_TRIGGER: u16 = 63;
/// Measurement Period.
pub const MEASUREMENT_PERIOD: u16 = 64;
/// Volume Measurement.
pub const VOLUME_MEASUREMENT: u16 = 66;
/// Start Time.
pub const START_TIME: u16 = 75;
/// End Time.
pub const END_TIME: u16 = 76;
/// Query URR (grouped, Table 7.5.4.10-1).
pub const QUERY_URR: u16 = 77;
/// Usage Report within a Session Modification Response (grouped).
pub const USAGE_REPORT_SMR: u16 = 78;
/// Usage Report within a Session Deletion Response (grouped).
pub const USAGE_REPORT_SDR: u16 = 79;
/// Usage Report within a Session Report Request (grouped).
pub const USAGE_REPORT_SRR: u16 = 80;
/// URR ID.
pub const URR_ID: u16 = 81;
/// Outer Header Creation.
pub const OUTER_HEADER_CREATION: u16 = 84;
/// CP Function Features.
pub const CP_FUNCTION_FEATURES: u16 = 89;
/// UE IP Address.
pub const UE_IP_ADDRESS: u16 = 93;
/// Outer Header Removal.
pub const OUTER_HEADER_REMOVAL: u16 = 95;
/// Recovery Time Stamp.
pub const RECOVERY_TIME_STAMP: u16 = 96;
/// UR-SEQN.
pub const UR_SEQN: u16 = 104;
/// Activate Predefined Rules (8.2.72): the name of a rule set the user plane
/// already knows (vbng: an ACL name).
pub const ACTIVATE_PREDEFINED_RULES: u16 = 106;
/// Deactivate Predefined Rules (8.2.73): the name of a rule set to stop applying.
pub const DEACTIVATE_PREDEFINED_RULES: u16 = 107;
/// FAR ID.
pub const FAR_ID: u16 = 108;
/// QER ID.
pub const QER_ID: u16 = 109;
/// User Plane IP Resource Information.
pub const USER_PLANE_IP_RESOURCE_INFORMATION: u16 = 116;
/// Ethernet Packet Filter (grouped).
pub const ETHERNET_PACKET_FILTER: u16 = 132;
/// MAC address.
pub const MAC_ADDRESS: u16 = 133;
/// C-TAG.
pub const C_TAG: u16 = 134;
/// S-TAG.
pub const S_TAG: u16 = 135;
/// Ethernet Filter ID.
pub const ETHERNET_FILTER_ID: u16 = 138;
/// Framed-IPv6-Route (8.2.111).
pub const FRAMED_IPV6_ROUTE: u16 = 155;

/// BBF TR-459 vendor IE types (enterprise 3561), as Wireshark numbers them
/// (`PFCP_IE_ENTERPRISE_BBF_*` + 32768).
pub mod bbf {
    /// BBF UP Function Features (TR-459 6.6.1).
    pub const UP_FUNCTION_FEATURES: u16 = 32768;
    /// Logical Port (TR-459 6.6.2).
    pub const LOGICAL_PORT: u16 = 32769;
    /// BBF Outer Header Creation (TR-459 6.6.3).
    pub const OUTER_HEADER_CREATION: u16 = 32770;
    /// BBF Outer Header Removal (TR-459 6.6.4).
    pub const OUTER_HEADER_REMOVAL: u16 = 32771;
    /// PPPoE Session ID (TR-459 6.6.5).
    pub const PPPOE_SESSION_ID: u16 = 32772;
    /// PPP Protocol (TR-459 6.6.6).
    pub const PPP_PROTOCOL: u16 = 32773;
    /// MTU (TR-459 6.6.9).
    pub const MTU: u16 = 32776;
}
