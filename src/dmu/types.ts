// dmu_object_type_t values we write (include/sys/dmu.h).
export const DMU_OT_NONE = 0;
export const DMU_OT_OBJECT_DIRECTORY = 1;
export const DMU_OT_OBJECT_ARRAY = 2;
export const DMU_OT_PACKED_NVLIST = 3;
export const DMU_OT_PACKED_NVLIST_SIZE = 4;
export const DMU_OT_BPOBJ = 5;
export const DMU_OT_BPOBJ_HDR = 6;
export const DMU_OT_SPACE_MAP_HEADER = 7;
export const DMU_OT_SPACE_MAP = 8;
export const DMU_OT_DNODE = 10;
export const DMU_OT_OBJSET = 11;
export const DMU_OT_DSL_DIR = 12;
export const DMU_OT_DSL_DIR_CHILD_MAP = 13;
export const DMU_OT_DSL_DS_SNAP_MAP = 14;
export const DMU_OT_DSL_PROPS = 15;
export const DMU_OT_DSL_DATASET = 16;
export const DMU_OT_PLAIN_FILE_CONTENTS = 19;
export const DMU_OT_DIRECTORY_CONTENTS = 20;
export const DMU_OT_MASTER_NODE = 21;
export const DMU_OT_UNLINKED_SET = 22;
export const DMU_OT_POOL_PROPS = 31;
export const DMU_OT_NEXT_CLONES = 37;
export const DMU_OT_SA = 44;
export const DMU_OT_SA_MASTER_NODE = 45;
export const DMU_OT_SA_ATTR_REGISTRATION = 46;
export const DMU_OT_SA_ATTR_LAYOUTS = 47;
export const DMU_OT_DEADLIST = 50;
export const DMU_OT_DEADLIST_HDR = 51;
export const DMU_OT_DSL_CLONES = 52;
/** DMU_OTN_ZAP_METADATA: a "new type" ZAP (feature ZAPs). */
export const DMU_OTN_ZAP_METADATA = 0x80 | 0x40 | 4;

export const DMU_OST_META = 1;
export const DMU_OST_ZFS = 2;
